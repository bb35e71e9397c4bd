from gateway.dev.emulator.cli import main

main()
