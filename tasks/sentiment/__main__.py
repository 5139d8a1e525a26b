from tasks.sentiment.task import main

main()
