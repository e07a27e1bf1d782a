import sqlite3

conn = sqlite3.connect("x.db")
for row in conn.execute("SELECT 1"):
    print "row", row
