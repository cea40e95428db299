"""The daily report (issue 12): what a session left behind, as HTML with plots, and its email."""
