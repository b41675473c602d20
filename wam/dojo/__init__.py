"""The learned world as a place to evaluate and improve policies; closed-loop evaluation lives here too."""
