from xenaudit.logscan.cli import main

raise SystemExit(main())
