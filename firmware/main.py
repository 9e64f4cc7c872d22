# Runs at every boot: chooser.py picks the app directory (app.ptr, app.trial), then its app runs and never returns.
import chooser

chooser.run()
del chooser
import app

app.main()
