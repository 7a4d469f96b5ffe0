"""Code run by exec of a real file."""
import os

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mypkg", "helpers.py")
namespace = {"__name__": "executed"}
with open(path) as f:
    exec(compile(f.read(), path, "exec"), namespace)
print(namespace["helper"](21))
