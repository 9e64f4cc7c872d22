# Runs at every boot: the app (app.py) does the rest and never returns.
import app

app.main()
