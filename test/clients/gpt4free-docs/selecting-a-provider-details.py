provider_id = "HuggingChat"
url = f"http://localhost:1337/v1/providers/{provider_id}"

response = requests.get(url, headers={"accept": "application/json"})
provider_details = response.json()

print(f"Provider ID: {provider_details['id']}")
print(f"Supported Models: {provider_details['models']}")
print(f"Parameters: {provider_details['params']}")
