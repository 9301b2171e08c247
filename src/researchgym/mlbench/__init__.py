"""ML-Bench: repository-level ML tasks (given a repository and an instruction, write the command).

schema.py (a sample), data.py (load samples: the hub dataset, parquet/JSONL, built-in suites),
repos.py (repositories pinned and materialised into a cache), extract.py (code from a reply),
judge.py (argument, type and execution checks), context.py (the four LLM-setting contexts),
llm.py (the LLM setting: k samples per task, judged, stored), metrics.py (pass@k both ways).
"""
