# Runs at every boot: chooser.py picks the app directory (app.ptr, app.trial), then its app runs and never returns.
import chooser

chooser.run()
del chooser
try:
    import app
except Exception as e:  # an app that cannot load: reset (one trial boot gone), not the REPL
    import chooser

    chooser.crashed(e)
app.main()
