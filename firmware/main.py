# Runs at every boot: chooser.py picks the app directory (app.ptr, app.trial), then its app runs and never returns.
__import__("chooser").run()  # (chooser.py leaves sys.modules by itself; no name for it here)
import app

app.main()
