from tasks.long_range.task import main

main()
