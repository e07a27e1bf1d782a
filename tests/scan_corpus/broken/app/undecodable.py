# Résumé generator (saved as latin-1, no coding cookie)
TITLE = "Résumé"


def title():
    return TITLE
