"""``python -m bpfkit.testing.vm``."""
import sys

from .cli import main

sys.exit(main())
