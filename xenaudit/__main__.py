from xenaudit.cli import main

raise SystemExit(main())
