from tasks.common.config import run_main

run_main("tasks.long_range")
