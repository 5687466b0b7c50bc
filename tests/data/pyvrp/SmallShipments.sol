Route #1: 3 5 6 4
Route #2: 2 1 8 7
Cost 65128
