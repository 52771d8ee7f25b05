"""Lab 16: scalability, reliability and cost of the model server.

- `loadtest`: a bounded Locust load test (ramp 1 → N users, client retries) against the V2
  inference endpoint, with a report and the latency SLO's verdict (`fraudlab load-test`);
- `locustfile`: the Locust user it runs (loaded only by Locust: importing it patches the
  standard library with gevent);
- `rightsize`: requests and limits proposed from the CPU and memory Prometheus measured during
  the load test (`fraudlab rightsize`, lab 16's exercise `propose`).
"""
