import os
PEM_HEADER = "-----BEGIN RSA PRIVATE KEY-----"
PEM_FOOTER = "-----END RSA PRIVATE KEY-----"

def load(path, password=None):
    password = os.environ["KEY_PASSWORD"]
    token = get_token()
    secret = ""
    api_key = settings.API_KEY
    if line.startswith("-----BEGIN PRIVATE KEY-----"):
        return parse(line)
    DB_PASSWORD = os.getenv("DB_PASSWORD", "")
    token_type = "bearer-access-token"
