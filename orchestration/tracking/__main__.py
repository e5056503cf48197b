"""``python -m orchestration.tracking replay SPOOL.jsonl --tracking-uri URI``."""

from orchestration.tracking.spool import main

raise SystemExit(main())
