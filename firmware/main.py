# Runs at every boot: chooser.py picks the app directory (app.ptr, app.trial), then its app runs and never returns.
if __import__("chooser").run():  # (it leaves sys.modules by itself; no name for it here)
    __import__("ota_run").boot()  # an OTA download left for a boot of its own, before the app takes the heap
import app

app.main()
