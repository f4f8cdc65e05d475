"""A real Cognito protocol endpoint for the tests: moto in server mode on 127.0.0.1 (a free port
chosen by the OS), set up the way Pennsieve's `/authentication/cognito-config` describes Cognito:

* a token pool + app client: API keys are its users (username = key, password = secret);
* a user pool + app client: interactive users, whose access + refresh tokens are what workflow
  processors get as SESSION_TOKEN / REFRESH_TOKEN.

Prints one JSON line (endpoint, region, pool and client ids, the API key/secret, a user-pool
session from USER_PASSWORD_AUTH), then serves until its standard input closes, so it never
outlives the process that started it. Usage: python moto_cognito.py (no arguments).
"""

import json
import os
import sys

# Deterministic pool and client ids (a hash of the creation parameters instead of random ids).
os.environ["MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY"] = "HASH"
os.environ["MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY"] = "HASH"

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

REGION = "us-east-1"  # moto routes unsigned Cognito calls (InitiateAuth) to us-east-1
API_KEY = "3a0b1f6e-5c1d-4f2e-9a7b-000000000001"
API_SECRET = "Api-Secret-0001-moto!"
USER = "processor@example.org"
USER_PASSWORD = "User-Password-0001-moto!"
FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


def pool_with_client(idp, name):
    pool = idp.create_user_pool(PoolName=name)["UserPool"]["Id"]
    client = idp.create_user_pool_client(
        UserPoolId=pool, ClientName=f"{name}-client", ExplicitAuthFlows=FLOWS
    )["UserPoolClient"]["ClientId"]
    return pool, client


def user(idp, pool, username, password):
    idp.admin_create_user(
        UserPoolId=pool,
        Username=username,
        TemporaryPassword=password + "-temp",
        MessageAction="SUPPRESS",
    )
    idp.admin_set_user_password(
        UserPoolId=pool, Username=username, Password=password, Permanent=True
    )


def main():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}/"
    idp = boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    token_pool, token_client = pool_with_client(idp, "pennsieve-token-pool")
    user_pool, user_client = pool_with_client(idp, "pennsieve-user-pool")
    user(idp, token_pool, API_KEY, API_SECRET)
    user(idp, user_pool, USER, USER_PASSWORD)
    session = idp.initiate_auth(
        ClientId=user_client,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": USER, "PASSWORD": USER_PASSWORD},
    )["AuthenticationResult"]
    ready = {
        "endpoint": endpoint,
        "region": REGION,
        "user_pool_id": user_pool,
        "user_pool_client_id": user_client,
        "token_pool_id": token_pool,
        "token_pool_client_id": token_client,
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        "session_access_token": session["AccessToken"],
        "session_refresh_token": session["RefreshToken"],
    }
    print(json.dumps(ready), flush=True)
    # Serve until the parent closes our stdin (it exited, or it is done with us).
    sys.stdin.read()
    os._exit(0)


if __name__ == "__main__":
    main()
