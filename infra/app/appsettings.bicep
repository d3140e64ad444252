// The function app's full app settings (this resource replaces the whole list): the host's
// connections, then the bridge's settings from the README's settings table. Applied after the role
// assignments, so the Key Vault reference resolves when the host restarts with them.
param functionAppName string

@description('The host\'s connections (see main.bicep).')
param hostSettings object

@description('The storage account\'s blob endpoint, for BLOB_ACCOUNT_URL in blob mode.')
param blobEndpoint string

@description('Key Vault secret URI (no version) of the Cosmos DB connection string.')
param cosmosSecretUri string

@allowed(['cosmos', 'blob'])
param mediaStore string
param maxPartBytes string
param maxRequestBytes string
param requestBodySizeLimit string
param extraAppSettings object = {}

var bridgeSettings = union(
  {
    COSMOS_CONNECTION_STRING: '@Microsoft.KeyVault(SecretUri=${cosmosSecretUri})'
    // Keeps memory flat under large uploads (src/runtime.ts RECOMMENDED_NODE_OPTIONS).
    NODE_OPTIONS: '--max-semi-space-size=1'
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: requestBodySizeLimit
    MAX_PART_BYTES: maxPartBytes
    MAX_REQUEST_BYTES: maxRequestBytes
    MEDIA_STORE: mediaStore
  },
  // Blob mode signs in with the app's identity (DefaultAzureCredential), never with a key.
  mediaStore == 'blob' ? { BLOB_ACCOUNT_URL: blobEndpoint } : {}
)

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  // The template's own settings win over extraAppSettings.
  properties: union(extraAppSettings, hostSettings, bridgeSettings)
}
