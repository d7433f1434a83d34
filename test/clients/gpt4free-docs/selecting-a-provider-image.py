import requests

url = "http://localhost:1337/v1/images/generate"

payload = {
    "prompt": "a futuristic cityscape at sunset",
    "model": "flux",
    "provider": "HuggingSpace",
    "response_format": "url"
}

response = requests.post(url, json=payload, headers={"Content-Type": "application/json"})
data = response.json()

if "data" in data:
    for item in data["data"]:
        print(f"Image URL: {item['url']}")
else:
    print("No response received")
