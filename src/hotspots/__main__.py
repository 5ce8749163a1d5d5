from hotspots.cli import main

main()
