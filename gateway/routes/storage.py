"""S3 storage routes (API.md "S3 storage", R-S3-1…5): storages, buckets, credentials, usage.

Every route authenticates and calls the storage service, which takes the customer from the
call context: another customer's storage is a 404 on every route. Bucket creation, bucket
deletion and storage deletion answer 202 with the operation (their result arrives in the
action log); bucket names are checked by the storage service's domain (S3 naming rules, the
rule broken named in ``fields.name``).
"""

from gateway.http import http, idempotency_key, load_json, load_query
from gateway.idempotency import idempotent
from gateway.schemas import (
    BucketCreateSchema,
    BucketDeleteQuerySchema,
    StorageCreateSchema,
    StoragePageQuerySchema,
    StorageUsageQuerySchema,
)

BASE = "/api/v1/storage/s3"


class StorageRoutes:
    @http("GET", f"{BASE}")
    def list_storages(self, request):
        """The customer's S3 storages: name, limit, location, s3uid, bytes used (R-S3-1/2).
        ---
        get:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: StoragePageQuerySchema}
          responses:
            200: {content: {application/json: {schema: StorageList}}}
            400: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.storage.list_storages(**load_query(request, StoragePageQuerySchema))

    @http("POST", f"{BASE}")
    def create_storage(self, request):
        """Create a storage: its IAM user and access key are ready in the answer (R-S3-1).
        ---
        post:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: header, name: Idempotency-Key, schema: {type: string, maxLength: 200}}
          requestBody: {content: {application/json: {schema: StorageCreate}}}
          responses:
            201: {content: {application/json: {schema: StorageDetail}}}
            400: {description: "bad name, limit_gb, or a location that is not offered", content: {application/json: {schema: Error}}}
            503: {description: the location's cluster did not answer, content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        body = load_json(request, StorageCreateSchema())
        key = idempotency_key(request)
        return 201, self.cluster.slow.storage.create_storage(body["name"], body["limit_gb"], body["location"],
                                                        idempotency_key=key)

    @http("GET", f"{BASE}/locations")
    def storage_locations(self, request):
        """The locations a storage can be created in, with their S3 endpoints.
        ---
        get:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: StorageLocationList}}}
        """
        self.sessions.authenticate(request)
        items = self.cluster.storage.locations()
        return {"items": items, "total": len(items), "page": 1, "per_page": max(len(items), 1)}

    @http("GET", f"{BASE}/<storage_id>")
    def get_storage(self, request, storage_id):
        """One storage, with its endpoint and recent operations.
        ---
        get:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: StorageDetail}}}
            404: {description: no such storage (or another customer's), content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return self.cluster.storage.get_storage(storage_id)

    @http("DELETE", f"{BASE}/<storage_id>")
    @idempotent
    def delete_storage(self, request, storage_id):
        """Delete a storage: its buckets, objects, access keys and IAM user go (an operation).
        ---
        delete:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          responses:
            202: {content: {application/json: {schema: OperationAccepted}}}
            404: {content: {application/json: {schema: Error}}}
            409: {description: "already being deleted, or a bucket operation is running", content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return 202, {"operation": self.cluster.storage.delete_storage(storage_id)}

    @http("GET", f"{BASE}/<storage_id>/buckets")
    def list_buckets(self, request, storage_id):
        """The storage's buckets (R-S3-3).
        ---
        get:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: StoragePageQuerySchema}
          responses:
            200: {content: {application/json: {schema: BucketList}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        query = load_query(request, StoragePageQuerySchema)
        return self.cluster.storage.list_buckets(storage_id, **query)

    @http("POST", f"{BASE}/<storage_id>/buckets")
    def create_bucket(self, request, storage_id):
        """Add a bucket by name (R-S3-3): accepted at once, created on the cluster as an operation.
        ---
        post:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: header, name: Idempotency-Key, schema: {type: string, maxLength: 200},
             description: "the same key again answers the first request, creating nothing new"}
          requestBody: {content: {application/json: {schema: BucketCreate}}}
          responses:
            202: {content: {application/json: {schema: BucketAccepted}}}
            400: {description: "the S3 naming rule broken, in fields.name", content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
            409: {description: "bucket_exists, bucket_name_taken (in use in this location), too_many_buckets", content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        body = load_json(request, BucketCreateSchema())
        return 202, self.cluster.storage.create_bucket(storage_id, body["name"],
                                                       idempotency_key=idempotency_key(request))

    @http("DELETE", f"{BASE}/<storage_id>/buckets/<name>")
    @idempotent
    def delete_bucket(self, request, storage_id, name):
        """Delete a bucket (R-S3-3); a bucket holding objects only with force=true (an operation).
        ---
        delete:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: BucketDeleteQuerySchema}
          responses:
            202: {content: {application/json: {schema: OperationAccepted}}}
            404: {content: {application/json: {schema: Error}}}
            409: {description: "bucket_not_empty (ask with force=true), bucket_deleting", content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        query = load_query(request, BucketDeleteQuerySchema)
        return 202, {"operation": self.cluster.storage.delete_bucket(storage_id, name, query["force"])}

    @http("GET", f"{BASE}/<storage_id>/credentials")
    def storage_credentials(self, request, storage_id):
        """What an S3 client needs to connect: access key, secret key, endpoints, region (R-S3-5).
        ---
        get:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200:
              description: never cached (Cache-Control no-store)
              content: {application/json: {schema: StorageCredentials}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return 200, {"Cache-Control": "no-store"}, self.cluster.storage.get_credentials(storage_id)

    @http("POST", f"{BASE}/<storage_id>/credentials/rotate")
    @idempotent
    def rotate_storage_credentials(self, request, storage_id):
        """Replace the access key: the new key works at once, the old one stops working.
        ---
        post:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          responses:
            200: {content: {application/json: {schema: StorageCredentials}}}
            404: {content: {application/json: {schema: Error}}}
            409: {description: the storage is being deleted, content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        return 200, {"Cache-Control": "no-store"}, self.cluster.slow.storage.rotate_credentials(storage_id)

    @http("GET", f"{BASE}/<storage_id>/usage")
    def storage_usage(self, request, storage_id):
        """Storage used or bandwidth over a period, per step, for the overview charts (R-S3-4).
        ---
        get:
          tags: [storage]
          security: [{bearer: []}, {cookie: []}]
          parameters:
          - {in: query, schema: StorageUsageQuerySchema}
          responses:
            200: {content: {application/json: {schema: StorageUsage}}}
            400: {description: "bad metric, from, to or step (named in fields)", content: {application/json: {schema: Error}}}
            404: {content: {application/json: {schema: Error}}}
        """
        self.sessions.authenticate(request)
        query = load_query(request, StorageUsageQuerySchema)
        return self.cluster.storage.get_usage(storage_id, query["metric"], query.get("start"), query.get("end"),
                                              query.get("step"))
