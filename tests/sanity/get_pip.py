"""Stand-in for the get-pip.py that ansible-test downloads from its own server.

ansible-test runs its cached get-pip script inside each fresh sanity venv with
pip's install arguments. This machine reaches PyPI but not that server, so the
bootstrap is done with the interpreter's own ensurepip, then pip installs the
requested packages from PyPI. Options only get-pip.py knows are dropped.
"""

import subprocess
import sys

GET_PIP_ONLY = {'--no-setuptools', '--no-wheel'}

# In a child process: ensurepip points PIP_CONFIG_FILE at /dev/null in its own
# environment, which would drop this machine's pip configuration for the install.
subprocess.check_call([sys.executable, '-m', 'ensurepip', '--upgrade'], stdout=subprocess.DEVNULL)
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, '-m', 'pip', 'install'] + args))
