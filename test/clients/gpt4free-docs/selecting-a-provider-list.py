import requests

url = "http://localhost:1337/v1/providers"

response = requests.get(url, headers={"accept": "application/json"})
providers = response.json()

for provider in providers:
    print(f"ID: {provider['id']}, URL: {provider['url']}")
