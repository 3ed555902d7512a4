from eden.cli import main

main()
