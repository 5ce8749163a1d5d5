from hotspots._entry import command

command()
