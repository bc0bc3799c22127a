def test_schema_is_served(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 200
