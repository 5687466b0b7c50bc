Route #1: 2
Route #2:
Route #3: 3 4
