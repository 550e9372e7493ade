from strongroom.cli.main import main

raise SystemExit(main())
