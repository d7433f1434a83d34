import os
import sys

from openai import APIError, OpenAI

client = OpenAI(
    base_url=os.environ.get("INTERFERENCE_URL", "http://localhost:1337/v1"),
    # The gateway's own key, if it has one; provider keys stay on the gateway. The SDK insists on a key.
    api_key=os.environ.get("INTERFERENCE_API_KEY", "unused"),
)
provider = os.environ.get("PROVIDER", "Groq")  # or "HuggingChat AnotherProvider": tried in order
model = os.environ.get("MODEL", "llama-3.3-70b")
messages = [{"role": "user", "content": "Say hello"}]

try:
    reply = client.chat.completions.create(
        model=model, messages=messages, extra_body={"provider": provider}
    )
    print(reply.choices[0].message.content)

    stream = client.chat.completions.create(
        model=model, messages=messages, stream=True, extra_body={"provider": provider}
    )
    for chunk in stream:
        if chunk.choices:
            print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()
except APIError as error:
    sys.exit(f"Error: {error.message}")
