import sys

from pix2pix.cli import main

sys.exit(main())
