import requests

url = "http://localhost:1337/v1/chat/completions"

payload = {
    "model": "gpt-4o-mini",
    "provider": "HuggingChat",
    "messages": [
        {"role": "user", "content": "Write a short story about a robot"}
    ]
}

response = requests.post(url, json=payload, headers={"Content-Type": "application/json"})
data = response.json()

if "choices" in data:
    for choice in data["choices"]:
        print(choice["message"]["content"])
else:
    print("No response received")
