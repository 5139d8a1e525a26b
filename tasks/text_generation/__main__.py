from tasks.text_generation.task import main

main()
