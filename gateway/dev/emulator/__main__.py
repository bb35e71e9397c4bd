from gateway.emulator.cli import main

main()
