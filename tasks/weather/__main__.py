from tasks.weather.task import main

main()
