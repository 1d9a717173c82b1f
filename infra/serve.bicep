// The search service (`audio-embeddings serve`) as an Azure Container App: the page, the search
// API and the catalogue's audio over HTTPS, running as the pipeline identity.
//
//   az deployment group create -g <rg> -f infra/serve.bicep \
//     -p namePrefix=audioemb image=<registry>/audio-embeddings:<tag> \
//        pipelineIdentityId=<storage output pipelineIdentityId> \
//        pipelineIdentityClientId=<storage output pipelineIdentityClientId> \
//        blobAccountUrl=<storage output blobAccountUrl> searchEndpoint=<search output> \
//        entraAudience=api://audio-embeddings [apiKey=<secret>]
//
// The container listens on 0.0.0.0 behind the Container Apps ingress, so the service insists on
// authentication: Entra ID bearer tokens of this tenant for `entraAudience`, and/or an API key
// (kept as a Container Apps secret). One replica stays warm (the model takes seconds to load);
// more are added under concurrent requests. 4 vCPU / 8 GiB holds Cnn14 (330 MB) with room for
// query batches.

@description('Prefix for resource names (lower-case letters and digits).')
@minLength(3)
param namePrefix string

param location string = resourceGroup().location

@description('Container image with this project installed (entry point: audio-embeddings).')
param image string

@description('Resource id of the pipeline identity (storage.bicep output pipelineIdentityId).')
param pipelineIdentityId string

@description('Its client id (storage.bicep output pipelineIdentityClientId).')
param pipelineIdentityClientId string

@description('https://<account>.blob.core.windows.net/ (storage.bicep output blobAccountUrl).')
param blobAccountUrl string

@description('Delta table of embeddings, e.g. az://embeddings/snapshots.')
param snapshotUri string = 'az://embeddings/snapshots'

@description('Folder of anomaly scan tables, e.g. az://embeddings/anomaly.')
param anomalyUri string = 'az://embeddings/anomaly'

@description('Folder of label sets, classifiers and predictions (the page\'s facets).')
param classifyUri string = 'az://embeddings/classify'

@description('https://<service>.search.windows.net (search.bicep output searchEndpoint).')
param searchEndpoint string

@description('Index (alias) name the pipeline refreshes.')
param indexName string = 'audio-embeddings'

@description('Entra ID tenant whose tokens are accepted.')
param entraTenantId string = tenant().tenantId

@description('Audience the tokens must carry (the API app registration: client id or api:// URI).')
param entraAudience string

@description('Optional API key for callers without Entra ID (the page logs in with it).')
@secure()
param apiKey string = ''

@description('Where the Cnn14 checkpoint is downloaded from on first start (a mirror or Blob URL with SAS).')
@secure()
param checkpointUrl string = ''

param cpu string = '4.0'
param memory string = '8Gi'

@minValue(1)
param minReplicas int = 1

@minValue(1)
param maxReplicas int = 4

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-serve-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource environment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: '${namePrefix}-serve-env'
  location: location
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
  }
}

var secrets = concat(
  empty(apiKey) ? [] : [{ name: 'serve-api-key', value: apiKey }],
  empty(checkpointUrl) ? [] : [{ name: 'checkpoint-url', value: checkpointUrl }]
)

var baseEnvironment = [
  { name: 'AUDIO_EMBEDDINGS_SERVE_HOST', value: '0.0.0.0' }
  { name: 'AUDIO_EMBEDDINGS_SERVE_PORT', value: '8000' }
  // one JSON access line per request; in Log Analytics: ContainerAppConsoleLogs | extend r = parse_json(Log)
  { name: 'AUDIO_EMBEDDINGS_SERVE_ACCESS_LOG', value: 'json' }
  { name: 'AUDIO_EMBEDDINGS_SERVE_ENTRA_TENANT_ID', value: entraTenantId }
  { name: 'AUDIO_EMBEDDINGS_SERVE_ENTRA_AUDIENCE', value: entraAudience }
  { name: 'AZURE_CLIENT_ID', value: pipelineIdentityClientId }
  { name: 'AUDIO_EMBEDDINGS_BLOB_ACCOUNT_URL', value: blobAccountUrl }
  { name: 'AUDIO_EMBEDDINGS_SNAPSHOT_URI', value: snapshotUri }
  { name: 'AUDIO_EMBEDDINGS_ANOMALY_URI', value: anomalyUri }
  { name: 'AUDIO_EMBEDDINGS_CLASSIFY_URI', value: classifyUri }
  { name: 'AUDIO_EMBEDDINGS_INDEX_BACKEND', value: 'azure_search' }
  { name: 'AUDIO_EMBEDDINGS_SEARCH_ENDPOINT', value: searchEndpoint }
  { name: 'AUDIO_EMBEDDINGS_INDEX_NAME', value: indexName }
]

var secretEnvironment = concat(
  empty(apiKey) ? [] : [{ name: 'AUDIO_EMBEDDINGS_SERVE_API_KEY', secretRef: 'serve-api-key' }],
  empty(checkpointUrl) ? [] : [{ name: 'AUDIO_EMBEDDINGS_CHECKPOINT_URL', secretRef: 'checkpoint-url' }]
)

resource service 'Microsoft.App/containerApps@2024-03-01' = {
  name: '${namePrefix}-serve'
  location: location
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${pipelineIdentityId}': {} }
  }
  properties: {
    managedEnvironmentId: environment.id
    configuration: {
      secrets: secrets
      ingress: {
        external: true
        targetPort: 8000
        transport: 'http'
        allowInsecure: false
      }
    }
    template: {
      containers: [
        {
          name: 'serve'
          image: image
          command: ['audio-embeddings', 'serve']
          resources: { cpu: json(cpu), memory: memory }
          env: concat(baseEnvironment, secretEnvironment)
          probes: [
            {
              type: 'Startup'
              httpGet: { path: '/healthz', port: 8000 }
              periodSeconds: 5
              failureThreshold: 60 // up to 5 minutes for a first checkpoint download
            }
            {
              type: 'Liveness'
              httpGet: { path: '/healthz', port: 8000 }
              periodSeconds: 30
            }
          ]
        }
      ]
      scale: {
        minReplicas: minReplicas
        maxReplicas: maxReplicas
        rules: [
          {
            name: 'concurrent-queries'
            http: { metadata: { concurrentRequests: '16' } }
          }
        ]
      }
    }
  }
}

output serviceUrl string = 'https://${service.properties.configuration.ingress.fqdn}'
output containerAppName string = service.name
