-- wrk: POST an Auth0 /dbconnections/signup JSON body to SIGNUP_PATH.
wrk.method = "POST"
wrk.path = os.getenv("SIGNUP_PATH") or "/dbconnections/signup"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept-Language"] = "en-US,en;q=0.9"
wrk.body = '{"client_id":"spa","email":"bench@example.com","password":"correct horse battery",' ..
  '"connection":"Username-Password-Authentication","username":"bench","user_metadata":{"plan":"trial"}}'
