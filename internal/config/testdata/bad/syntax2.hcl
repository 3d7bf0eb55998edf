loops = 4 4
listener "echo" {
