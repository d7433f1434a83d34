import os
import sys

import requests

url = os.environ.get("INTERFERENCE_URL", "http://localhost:1337/v1") + "/chat/completions"
body = {
    "model": os.environ.get("MODEL", "llama-3.3-70b"),
    "provider": os.environ.get("PROVIDER", "Groq"),  # or "HuggingChat AnotherProvider"
    "messages": [{"role": "user", "content": "Say hello"}],
}
# The gateway's own key, if it has one; provider keys stay on the gateway.
headers = {"Authorization": "Bearer " + os.environ.get("INTERFERENCE_API_KEY", "unused")}
try:
    response = requests.post(url, json=body, headers=headers, timeout=120)
except requests.RequestException as error:
    sys.exit(f"Error: {error}")
if not response.ok:
    # Every error from the gateway is OpenAI-shaped JSON: {"error": {"message": ..., "code": ...}}
    sys.exit(f"Error {response.status_code}: {response.json()['error']['message']}")
reply = response.json()
print("answered by", reply["provider"])
print(reply["choices"][0]["message"]["content"])
