loops = 1
