"""The dashboard's pages, registered by `app.py` with `st.navigation`. Not named `pages/`:
Streamlit would list a folder of that name on its own, beside the navigation."""
