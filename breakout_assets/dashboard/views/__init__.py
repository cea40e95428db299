"""The dashboard's pages: scripts `app.py` registers with `st.navigation`."""
