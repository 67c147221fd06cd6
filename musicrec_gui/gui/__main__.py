import sys

from musicrec_gui.gui.app import main

sys.exit(main())
