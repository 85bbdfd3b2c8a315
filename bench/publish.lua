-- A webhook_publish of a deal.won event (the type the benchmark's matching subscriptions take).
wrk.method = "POST"
wrk.body = '{"New":{"StatusId":2,"Title":"Pedido 1234","Amount":1500.5}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Webhook-Event-Type"] = "deal.won"
