import os
import sys

print(repr(sys.argv))
print(__name__)
print(sys.path[0] == os.path.dirname(os.path.realpath(__file__)))
print(os.getcwd())
