package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Errors a controller turns into condition reasons. Returned errors wrap one
// of them with context; test with errors.Is.
var (
	// ErrBucketNotFound: the bucket (or local directory) does not exist.
	ErrBucketNotFound = errors.New("bucket not found")
	// ErrAccessDenied: the credentials are valid but lack a permission.
	ErrAccessDenied = errors.New("access denied")
	// ErrUnreachable: the endpoint could not be reached (network, DNS, TLS).
	ErrUnreachable = errors.New("storage unreachable")
	// ErrInvalidCredentials: the access key is unknown or the secret wrong.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrNotFound: the object (e.g. metadata.yaml) does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrWholeStorage: a deletion would empty the whole bucket (or the
	// whole local directory), which Keepsake refuses to do.
	ErrWholeStorage = errors.New("refusing to delete the whole storage")
)

// s3ErrorCodes maps S3 error codes to the errors above.
var s3ErrorCodes = map[string]error{
	"NoSuchBucket":                 ErrBucketNotFound,
	"NoSuchKey":                    ErrNotFound,
	"AccessDenied":                 ErrAccessDenied,
	"AllAccessDisabled":            ErrAccessDenied,
	"AccountProblem":               ErrAccessDenied,
	"InvalidAccessKeyId":           ErrInvalidCredentials,
	"SignatureDoesNotMatch":        ErrInvalidCredentials,
	"InvalidToken":                 ErrInvalidCredentials,
	"ExpiredToken":                 ErrInvalidCredentials,
	"InvalidClientTokenId":         ErrInvalidCredentials,
	"AuthorizationHeaderMalformed": ErrInvalidCredentials,
}

// classifyS3 returns which of the errors above an S3 call's error is, or nil
// when it is none of them. HEAD responses carry no body, hence no code: a
// bare 404 means the bucket when notFound is ErrBucketNotFound, and a bare
// 403 is AccessDenied until a call with a body says more.
func classifyS3(err error, notFound error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		if kind, ok := s3ErrorCodes[apiErr.ErrorCode()]; ok {
			return kind
		}
	}
	if isNetworkError(err) {
		return ErrUnreachable
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		return classifyStatus(respErr.HTTPStatusCode(), notFound)
	}
	return nil
}

// classifyStatus maps a bare HTTP status to an error kind, or nil.
func classifyStatus(status int, notFound error) error {
	switch status {
	case http.StatusNotFound:
		return notFound
	case http.StatusForbidden:
		return ErrAccessDenied
	case http.StatusUnauthorized:
		return ErrInvalidCredentials
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return ErrUnreachable
	}
	return nil
}

// isNetworkError reports failures to reach or trust the endpoint: dial and
// DNS errors, timeouts, resets and TLS verification failures.
func isNetworkError(err error) bool {
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	return errors.As(err, &netErr) || errors.As(err, &certErr) ||
		errors.As(err, &unknownAuth) || errors.As(err, &hostErr) ||
		errors.As(err, &recordErr) || errors.Is(err, context.DeadlineExceeded)
}

// wrapS3 wraps err from operation op with the error kind it is, if any.
func wrapS3(op string, err error, notFound error) error {
	if kind := classifyS3(err, notFound); kind != nil && !errors.Is(err, kind) {
		return fmt.Errorf("%s: %w: %w", op, kind, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
