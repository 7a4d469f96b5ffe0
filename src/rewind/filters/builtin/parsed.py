# ruff: noqa: E501
"""The builtin filters, parsed ahead of time. Written by
`python -m rewind.filters.builtin.regenerate` from the .toml files next to this; do not edit."""

# file name -> (sha256 of its bytes, its text, its TOML document)
BUILTINS = {'default.toml': ('ab494c6d173ed79747fea3edabe74efe51f452b35589b1e125f52e9ad55a47ed',
                  '# builtin-default: always the first filter of every chain.\n'
                  '#\n'
                  '# Skips the standard library and recorder/tooling internals, traces everything else\n'
                  '# (site-packages included), and redacts values whose names look like secrets.\n'
                  '# Its file: selectors see absolute POSIX paths (builtins have no project root).\n'
                  "# At load, rewind appends rules for this interpreter's sysconfig stdlib directories\n"
                  '# and for rewind\'s own package directory (marked "generated" by `rewind filter '
                  'explain`).\n'
                  '\n'
                  '[meta]\n'
                  'name = "builtin-default"\n'
                  'version = 1\n'
                  'description = "Skip the standard library and recorder internals; redact secret-looking '
                  'names."\n'
                  'labels = ["builtin", "default"]\n'
                  '\n'
                  '[scope]\n'
                  'default_exec = "trace"\n'
                  'default_value_action = "allow"\n'
                  '\n'
                  '# No rule here sets exec = "trace": a trace rule would override a user filter\'s\n'
                  '# default_exec = "skip". site-packages is kept by excluding it from the skip rules.\n'
                  '[[scope.rules]]\n'
                  "selector = 'file:regex:/lib(?:64)?/python\\d+\\.\\d+t?/(?!(?:site|dist)-packages/)'\n"
                  'exec = "skip"\n'
                  'reason = "standard library (lib/pythonX.Y/, not site-packages)"\n'
                  '\n'
                  '[[scope.rules]]\n'
                  "selector = 'file:regex:^[A-Za-z]:/(?:[^/]+/)*[Pp]ython[^/]*/Lib/(?!site-packages/)'\n"
                  'exec = "skip"\n'
                  'reason = "standard library (Windows PythonXY\\\\Lib\\\\, not site-packages)"\n'
                  '\n'
                  '[[scope.rules]]\n'
                  'selector = "file:glob:**/_virtualenv.py"\n'
                  'exec = "skip"\n'
                  'reason = "virtualenv bootstrap helper"\n'
                  '\n'
                  '[[scope.rules]]\n'
                  'selector = "pkg:_distutils_hack.*"\n'
                  'exec = "skip"\n'
                  'reason = "setuptools distutils shim"\n'
                  '\n'
                  '[[scope.rules]]\n'
                  'selector = "pkg:literal:builtins"\n'
                  'exec = "skip"\n'
                  'reason = "builtins module"\n'
                  '\n'
                  '[[scope.rules]]\n'
                  'selector = '
                  '"pkg:{asyncio,selectors,concurrent,importlib,threading,multiprocessing,backports.asyncio}.*"\n'
                  'exec = "skip"\n'
                  'reason = "stdlib concurrency and import machinery (also when not under lib/pythonX.Y/), '
                  'and backports.asyncio (asyncio.Runner on 3.10)"\n'
                  '\n'
                  '[[scope.rules]]\n'
                  'selector = "pkg:rewind.*"\n'
                  'exec = "skip"\n'
                  'reason = "rewind itself"\n'
                  '\n'
                  '# Secret-looking names: a listed word as a whole name or as one of its parts, where\n'
                  "# parts are separated by '_', '-', other non-letters or a camelCase boundary\n"
                  '# (api_key, userPassword, AUTH_TOKEN; not author, panel, company, tokenizer).\n'
                  "# Return values are matched on the function's own name (the last dotted part).\n"
                  '[[scope.rules]]\n'
                  'selector = "obj:*"\n'
                  'reason = "redact secret-looking names everywhere"\n'
                  '\n'
                  '[[scope.rules.value_patterns]]\n'
                  'selector = '
                  "'local:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])'\n"
                  'action = "redact"\n'
                  'reason = "secret-looking local variable"\n'
                  '\n'
                  '[[scope.rules.value_patterns]]\n'
                  'selector = '
                  "'arg:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])'\n"
                  'action = "redact"\n'
                  'reason = "secret-looking argument"\n'
                  '\n'
                  '[[scope.rules.value_patterns]]\n'
                  'selector = '
                  "'global:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])'\n"
                  'action = "redact"\n'
                  'reason = "secret-looking global"\n'
                  '\n'
                  '[[scope.rules.value_patterns]]\n'
                  'selector = '
                  "'attr:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])'\n"
                  'action = "redact"\n'
                  'reason = "secret-looking attribute"\n'
                  '\n'
                  '[[scope.rules.value_patterns]]\n'
                  'selector = '
                  "'ret:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])(?=[^.]*$)'\n"
                  'action = "redact"\n'
                  'reason = "return value of a function with a secret-looking name"\n',
                  {'meta': {'description': 'Skip the standard library and recorder internals; redact '
                                           'secret-looking names.',
                            'labels': ['builtin', 'default'],
                            'name': 'builtin-default',
                            'version': 1},
                   'scope': {'default_exec': 'trace',
                             'default_value_action': 'allow',
                             'rules': [{'exec': 'skip',
                                        'reason': 'standard library (lib/pythonX.Y/, not site-packages)',
                                        'selector': 'file:regex:/lib(?:64)?/python\\d+\\.\\d+t?/(?!(?:site|dist)-packages/)'},
                                       {'exec': 'skip',
                                        'reason': 'standard library (Windows PythonXY\\Lib\\, not '
                                                  'site-packages)',
                                        'selector': 'file:regex:^[A-Za-z]:/(?:[^/]+/)*[Pp]ython[^/]*/Lib/(?!site-packages/)'},
                                       {'exec': 'skip',
                                        'reason': 'virtualenv bootstrap helper',
                                        'selector': 'file:glob:**/_virtualenv.py'},
                                       {'exec': 'skip',
                                        'reason': 'setuptools distutils shim',
                                        'selector': 'pkg:_distutils_hack.*'},
                                       {'exec': 'skip',
                                        'reason': 'builtins module',
                                        'selector': 'pkg:literal:builtins'},
                                       {'exec': 'skip',
                                        'reason': 'stdlib concurrency and import machinery (also when not '
                                                  'under lib/pythonX.Y/), and backports.asyncio '
                                                  '(asyncio.Runner on 3.10)',
                                        'selector': 'pkg:{asyncio,selectors,concurrent,importlib,threading,multiprocessing,backports.asyncio}.*'},
                                       {'exec': 'skip',
                                        'reason': 'rewind itself',
                                        'selector': 'pkg:rewind.*'},
                                       {'reason': 'redact secret-looking names everywhere',
                                        'selector': 'obj:*',
                                        'value_patterns': [{'action': 'redact',
                                                            'reason': 'secret-looking local variable',
                                                            'selector': 'local:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])'},
                                                           {'action': 'redact',
                                                            'reason': 'secret-looking argument',
                                                            'selector': 'arg:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])'},
                                                           {'action': 'redact',
                                                            'reason': 'secret-looking global',
                                                            'selector': 'global:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])'},
                                                           {'action': 'redact',
                                                            'reason': 'secret-looking attribute',
                                                            'selector': 'attr:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])'},
                                                           {'action': 'redact',
                                                            'reason': 'return value of a function with a '
                                                                      'secret-looking name',
                                                            'selector': 'ret:regex:(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))(?i:passwords?|passwd|pwds?|secrets?|tokens?|sessions?|cookies?|auth|credentials?|creds|bearer|ssns?|credit|cards?|iban|cvv|cvc|jwts?|api[_-]?keys?|private[_-]?keys?|secret[_-]?keys?|ssh[_-]?keys?|refresh[_-]?tokens?|access[_-]?tokens?)(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])(?=[^.]*$)'}]}]}}),
 'pytest.toml': ('2a1aa6a9d4867e2598dba3696a4570ef0d320ef8f4e00554dfca034780ec11a8',
                 '# builtin-pytest: added after builtin-default when recording under pytest\n'
                 '# (`rewind --pytest ...`), unless --no-framework-filters.\n'
                 '\n'
                 '[meta]\n'
                 'name = "builtin-pytest"\n'
                 'version = 1\n'
                 'description = "Skip pytest and its plugin machinery; trace the tests themselves."\n'
                 'labels = ["builtin", "pytest"]\n'
                 '\n'
                 '[scope]\n'
                 'default_exec = "inherit"\n'
                 'default_value_action = "inherit"\n'
                 '\n'
                 '[[scope.rules]]\n'
                 'selector = '
                 '"pkg:{pytest,_pytest,pluggy,py,iniconfig,packaging,xdist,coverage,exceptiongroup,tomli,hypothesis}.*"\n'
                 'exec = "skip"\n'
                 'reason = "pytest and its infrastructure (exceptiongroup, tomli: its backports below 3.11; '
                 'hypothesis\'s engine: the tests using it are traced)"\n'
                 '\n'
                 '[[scope.rules]]\n'
                 'selector = "pkg:{pytest_*,_pytest_*,_hypothesis_*}"\n'
                 'exec = "skip"\n'
                 'reason = "pytest plugins (hypothesis ships its plugin as _hypothesis_pytestplugin)"\n'
                 '\n'
                 '[[scope.rules]]\n'
                 'selector = "pkg:{test_*,*.test_*,*_test,tests.*,*.tests.*,conftest,*.conftest}"\n'
                 'exec = "trace"\n'
                 'reason = "test modules (test_*, *_test), tests packages and conftest"\n'
                 '\n'
                 '[[scope.rules]]\n'
                 'selector = "file:glob:**/{test_*.py,*_test.py,conftest.py,tests/**/*.py}"\n'
                 'exec = "trace"\n'
                 'reason = "test files (test_*.py, *_test.py, tests/, conftest.py)"\n',
                 {'meta': {'description': 'Skip pytest and its plugin machinery; trace the tests themselves.',
                           'labels': ['builtin', 'pytest'],
                           'name': 'builtin-pytest',
                           'version': 1},
                  'scope': {'default_exec': 'inherit',
                            'default_value_action': 'inherit',
                            'rules': [{'exec': 'skip',
                                       'reason': 'pytest and its infrastructure (exceptiongroup, tomli: its '
                                                 "backports below 3.11; hypothesis's engine: the tests using "
                                                 'it are traced)',
                                       'selector': 'pkg:{pytest,_pytest,pluggy,py,iniconfig,packaging,xdist,coverage,exceptiongroup,tomli,hypothesis}.*'},
                                      {'exec': 'skip',
                                       'reason': 'pytest plugins (hypothesis ships its plugin as '
                                                 '_hypothesis_pytestplugin)',
                                       'selector': 'pkg:{pytest_*,_pytest_*,_hypothesis_*}'},
                                      {'exec': 'trace',
                                       'reason': 'test modules (test_*, *_test), tests packages and conftest',
                                       'selector': 'pkg:{test_*,*.test_*,*_test,tests.*,*.tests.*,conftest,*.conftest}'},
                                      {'exec': 'trace',
                                       'reason': 'test files (test_*.py, *_test.py, tests/, conftest.py)',
                                       'selector': 'file:glob:**/{test_*.py,*_test.py,conftest.py,tests/**/*.py}'}]}}),
 'unittest.toml': ('562977ad103cc84851e85f255543431b3e4f3054e2122d401ecd2f386b74f7a1',
                   '# builtin-unittest: added after builtin-default when recording under unittest\n'
                   '# (`rewind --unittest ...`), unless --no-framework-filters.\n'
                   '\n'
                   '[meta]\n'
                   'name = "builtin-unittest"\n'
                   'version = 1\n'
                   'description = "Skip unittest\'s runner; trace the tests themselves."\n'
                   'labels = ["builtin", "unittest"]\n'
                   '\n'
                   '[scope]\n'
                   'default_exec = "inherit"\n'
                   'default_value_action = "inherit"\n'
                   '\n'
                   '[[scope.rules]]\n'
                   'selector = "pkg:unittest.*"\n'
                   'exec = "skip"\n'
                   'reason = "unittest framework"\n'
                   '\n'
                   '[[scope.rules]]\n'
                   'selector = "pkg:{test_*,*.test_*,*_test,tests.*,*.tests.*}"\n'
                   'exec = "trace"\n'
                   'reason = "test modules (test_*, *_test) and tests packages"\n'
                   '\n'
                   '[[scope.rules]]\n'
                   'selector = "file:glob:**/{test_*.py,*_test.py,tests/**/*.py}"\n'
                   'exec = "trace"\n'
                   'reason = "test files (test_*.py, *_test.py, tests/)"\n',
                   {'meta': {'description': "Skip unittest's runner; trace the tests themselves.",
                             'labels': ['builtin', 'unittest'],
                             'name': 'builtin-unittest',
                             'version': 1},
                    'scope': {'default_exec': 'inherit',
                              'default_value_action': 'inherit',
                              'rules': [{'exec': 'skip',
                                         'reason': 'unittest framework',
                                         'selector': 'pkg:unittest.*'},
                                        {'exec': 'trace',
                                         'reason': 'test modules (test_*, *_test) and tests packages',
                                         'selector': 'pkg:{test_*,*.test_*,*_test,tests.*,*.tests.*}'},
                                        {'exec': 'trace',
                                         'reason': 'test files (test_*.py, *_test.py, tests/)',
                                         'selector': 'file:glob:**/{test_*.py,*_test.py,tests/**/*.py}'}]}})}
