/*
 * s3err.c - THE table from an S3 reply (HTTP status + <Code>) to the
 * project's error codes.  Nothing else in the tree maps S3 errors: the
 * provider and the retry policy only look at the BFS_ERR_* this returns.
 *
 * The <Code> decides when known (a 400 can be a bad argument or a
 * RequestTimeout); otherwise the status does.  Codes are the ones AWS
 * documents ("Error responses" in the S3 API reference) plus the ones
 * Ceph RGW, R2 and MinIO send, and Azure Blob Storage's x-ms-error-code
 * values ("Blob service error codes"; the azure provider passes that
 * header as the code).
 */
#include <stddef.h>
#include <string.h>

#include "bfs_error.h"
#include "bfs_http.h"

struct s3err_ent {
	const char *code;
	int err;
};

static const struct s3err_ent s3err_codes[] = {
	/* absent things */
	{ "NoSuchKey", BFS_ERR_NOTFOUND },
	{ "NoSuchUpload", BFS_ERR_NOTFOUND },
	{ "NoSuchVersion", BFS_ERR_NOTFOUND },
	{ "NoSuchBucket", BFS_ERR_NOBUCKET },
	/* credentials and permissions */
	{ "AccessDenied", BFS_ERR_ACCESS },
	{ "AllAccessDisabled", BFS_ERR_ACCESS },
	{ "AccountProblem", BFS_ERR_ACCESS },
	{ "InvalidAccessKeyId", BFS_ERR_ACCESS },
	{ "SignatureDoesNotMatch", BFS_ERR_ACCESS },
	{ "ExpiredToken", BFS_ERR_ACCESS },
	{ "InvalidToken", BFS_ERR_ACCESS },
	{ "TokenRefreshRequired", BFS_ERR_ACCESS },
	{ "RequestTimeTooSkewed", BFS_ERR_ACCESS },
	{ "InvalidSecurity", BFS_ERR_ACCESS },
	{ "InvalidObjectState", BFS_ERR_ACCESS },
	{ "UserSuspended", BFS_ERR_ACCESS },
	/* wrong endpoint / region / bucket name: a settings problem */
	{ "PermanentRedirect", BFS_ERR_CONFIG },
	{ "TemporaryRedirect", BFS_ERR_CONFIG },
	{ "AuthorizationHeaderMalformed", BFS_ERR_CONFIG },
	{ "IllegalLocationConstraintException", BFS_ERR_CONFIG },
	{ "InvalidBucketName", BFS_ERR_CONFIG },
	{ "InvalidRegion", BFS_ERR_CONFIG },
	/* transient: retried */
	{ "SlowDown", BFS_ERR_THROTTLED },
	{ "TooManyRequests", BFS_ERR_THROTTLED },
	{ "RequestTimeout", BFS_ERR_TIMEOUT },
	{ "InternalError", BFS_ERR_SERVER },
	{ "ServiceUnavailable", BFS_ERR_SERVER },
	{ "OperationAborted", BFS_ERR_SERVER },
	{ "BadDigest", BFS_ERR_NETWORK },               /* body damaged on the way */
	{ "XAmzContentSHA256Mismatch", BFS_ERR_NETWORK },
	{ "IncompleteBody", BFS_ERR_NETWORK },
	/* request problems */
	{ "InvalidRange", BFS_ERR_RANGE },
	{ "PreconditionFailed", BFS_ERR_PRECONDITION },
	{ "EntityTooLarge", BFS_ERR_TOOBIG },
	{ "MaxMessageLengthExceeded", BFS_ERR_TOOBIG },
	{ "KeyTooLongError", BFS_ERR_NAMETOOLONG },
	{ "BucketNotEmpty", BFS_ERR_NOTEMPTY },
	{ "BucketAlreadyExists", BFS_ERR_EXISTS },
	{ "BucketAlreadyOwnedByYou", BFS_ERR_EXISTS },
	{ "NotImplemented", BFS_ERR_NOTSUP },
	{ "MethodNotAllowed", BFS_ERR_NOTSUP },
	{ "QuotaExceeded", BFS_ERR_NOSPC },              /* RGW */
	{ "EntityTooSmall", BFS_ERR_INVAL },
	{ "InvalidPart", BFS_ERR_INVAL },
	{ "InvalidPartOrder", BFS_ERR_INVAL },
	{ "InvalidArgument", BFS_ERR_INVAL },
	{ "InvalidRequest", BFS_ERR_INVAL },
	{ "InvalidDigest", BFS_ERR_INVAL },
	{ "MalformedXML", BFS_ERR_INVAL },
	{ "MissingContentLength", BFS_ERR_INVAL },
	{ "InvalidStorageClass", BFS_ERR_INVAL },
	/* Azure Blob Storage (x-ms-error-code) */
	{ "BlobNotFound", BFS_ERR_NOTFOUND },
	{ "ResourceNotFound", BFS_ERR_NOTFOUND },
	{ "ContainerNotFound", BFS_ERR_NOBUCKET },
	{ "ContainerBeingDeleted", BFS_ERR_NOBUCKET },
	{ "AuthenticationFailed", BFS_ERR_ACCESS },
	{ "AuthorizationFailure", BFS_ERR_ACCESS },
	{ "AuthorizationPermissionMismatch", BFS_ERR_ACCESS },
	{ "AuthorizationProtocolMismatch", BFS_ERR_ACCESS },
	{ "AuthorizationResourceTypeMismatch", BFS_ERR_ACCESS },
	{ "AuthorizationSourceIPMismatch", BFS_ERR_ACCESS },
	{ "InsufficientAccountPermissions", BFS_ERR_ACCESS },
	{ "AccountIsDisabled", BFS_ERR_ACCESS },
	{ "InvalidAuthenticationInfo", BFS_ERR_ACCESS },
	{ "BlobArchived", BFS_ERR_ACCESS },
	{ "ServerBusy", BFS_ERR_THROTTLED },
	{ "OperationTimedOut", BFS_ERR_TIMEOUT },
	{ "Md5Mismatch", BFS_ERR_NETWORK },
	{ "ConditionNotMet", BFS_ERR_PRECONDITION },
	{ "TargetConditionNotMet", BFS_ERR_PRECONDITION },
	{ "SourceConditionNotMet", BFS_ERR_PRECONDITION },
	{ "BlobAlreadyExists", BFS_ERR_EXISTS },
	{ "ContainerAlreadyExists", BFS_ERR_EXISTS },
	{ "LeaseIdMissing", BFS_ERR_BUSY },
	{ "LeaseAlreadyPresent", BFS_ERR_BUSY },
	{ "PendingCopyOperation", BFS_ERR_BUSY },
	{ "RequestBodyTooLarge", BFS_ERR_TOOBIG },
	{ "BlockCountExceedsLimit", BFS_ERR_TOOBIG },
	{ "BlockListTooLong", BFS_ERR_TOOBIG },
	{ "InvalidBlockId", BFS_ERR_INVAL },
	{ "InvalidBlockList", BFS_ERR_INVAL },
	{ "InvalidBlobOrBlock", BFS_ERR_INVAL },
	{ "InvalidHeaderValue", BFS_ERR_INVAL },
	{ "InvalidQueryParameterValue", BFS_ERR_INVAL },
	{ "InvalidResourceName", BFS_ERR_INVAL },
	{ "InvalidUri", BFS_ERR_INVAL },
	{ "InvalidXmlDocument", BFS_ERR_INVAL },
	{ "MissingRequiredHeader", BFS_ERR_INVAL },
	{ "UnsupportedHeader", BFS_ERR_INVAL },
	{ "OutOfRangeInput", BFS_ERR_INVAL },
};

static int s3err_from_status(int status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 301: case 302: case 307: case 308:
		return BFS_ERR_CONFIG;      /* wrong region or endpoint */
	case 304: case 412:
		return BFS_ERR_PRECONDITION;
	case 400: case 411:
		return BFS_ERR_INVAL;
	case 401: case 403:
		return BFS_ERR_ACCESS;
	case 404:
		return BFS_ERR_NOTFOUND;
	case 405: case 501:
		return BFS_ERR_NOTSUP;
	case 408:
		return BFS_ERR_TIMEOUT;
	case 409:
		return BFS_ERR_BUSY;
	case 413:
		return BFS_ERR_TOOBIG;
	case 416:
		return BFS_ERR_RANGE;
	case 429: case 503:
		return BFS_ERR_THROTTLED;
	default:
		break;
	}
	if (status >= 500 && status < 600)
		return BFS_ERR_SERVER;
	return BFS_ERR_PROTOCOL;            /* 0, 1xx, odd 3xx/4xx */
}

int bfs_s3err_map(int status, const char *code)
{
	size_t i;

	if (status >= 200 && status < 300 && (!code || !*code))
		return 0;
	if (code && *code)
		for (i = 0; i < sizeof(s3err_codes) / sizeof(s3err_codes[0]); i++)
			if (!strcmp(code, s3err_codes[i].code))
				return s3err_codes[i].err;
	if (status >= 200 && status < 300)
		return BFS_ERR_SERVER;      /* a 200 carrying an unknown <Error> */
	return s3err_from_status(status);
}
