// Azure side of blob ingestion: the storage account and containers, the pipeline's identity with
// data-plane access, and Event Grid -> Azure Function bridge -> Prefect events API.
//
//   az deployment group create -g <rg> -f infra/storage.bicep \
//     -p namePrefix=audioemb prefectApiUrl=https://prefect.example.com/api \
//        prefectApiAuthString=<user:password> deployEventSubscription=false
//   infra/eventgrid_bridge/package.sh && (cd infra/eventgrid_bridge/dist && \
//     func azure functionapp publish <functionAppName output> --python)
//   az deployment group create ... -p deployEventSubscription=true   # once the function exists
//
// The subscription needs the function to exist, hence the two passes.

@description('Prefix for resource names (lower-case letters and digits).')
@minLength(3)
@maxLength(11)
param namePrefix string

param location string = resourceGroup().location

@description('Container that holds the audio catalogue.')
param audioContainer string = 'audio'

@description('Container that holds the Delta tables (snapshots, quarantine).')
param tablesContainer string = 'embeddings'

@description('Only blobs under this prefix raise events ("" for the whole container).')
param blobPrefix string = ''

@description('Only blobs with these suffixes raise events.')
param audioSuffixes array = ['.wav', '.flac', '.ogg', '.opus', '.mp3', '.aif', '.aiff']

@description('Prefect API URL the bridge posts events to, e.g. https://prefect.example.com/api.')
param prefectApiUrl string

@description('Self-hosted Prefect: user:password of PREFECT_SERVER_API_AUTH_STRING (or empty).')
@secure()
param prefectApiAuthString string = ''

@description('Prefect Cloud: an API key (or empty). Cloud users may instead point Event Grid at a Prefect webhook.')
@secure()
param prefectApiKey string = ''

@description('Create the Event Grid subscription (the function code must be published first).')
param deployEventSubscription bool = true

var storageName = '${namePrefix}${uniqueString(resourceGroup().id)}'
var blobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var completeWriteApis = ['PutBlob', 'PutBlockList', 'CopyBlob', 'FlushWithClose', 'SftpCommit']

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take(storageName, 24)
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
    isHnsEnabled: false
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource audio 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: audioContainer
}

resource tables 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: tablesContainer
}

resource deadLetters 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'eventgrid-deadletter'
}

// The identity the pipeline's workers run as (attach it to the AKS node pool / ACI / VM).
resource pipelineIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-pipeline'
  location: location
}

resource pipelineCanUseBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  scope: storage
  name: guid(storage.id, pipelineIdentity.id, blobDataContributor)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributor)
    principalId: pipelineIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${namePrefix}-bridge-plan'
  location: location
  sku: { name: 'Y1', tier: 'Dynamic' }
  kind: 'functionapp'
  properties: { reserved: true }
}

resource bridge 'Microsoft.Web/sites@2023-12-01' = {
  name: '${namePrefix}-bridge-${uniqueString(resourceGroup().id)}'
  location: location
  kind: 'functionapp,linux'
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: 'Python|3.11'
      minTlsVersion: '1.2'
      appSettings: [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
        {
          name: 'AzureWebJobsStorage'
          value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'
        }
        { name: 'PREFECT_API_URL', value: prefectApiUrl }
        { name: 'PREFECT_API_AUTH_STRING', value: prefectApiAuthString }
        { name: 'PREFECT_API_KEY', value: prefectApiKey }
      ]
    }
  }
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${storage.name}-events'
  location: location
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource blobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (deployEventSubscription) {
  parent: systemTopic
  name: 'audio-blob-created'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${bridge.id}/functions/blob_created_to_prefect'
        maxEventsPerBatch: 1
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${audioContainer}/blobs/${blobPrefix}'
      advancedFilters: [
        { operatorType: 'StringIn', key: 'data.api', values: completeWriteApis }
        { operatorType: 'StringEndsWith', key: 'subject', values: audioSuffixes }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterDestination: {
      endpointType: 'StorageBlob'
      properties: {
        resourceId: storage.id
        blobContainerName: deadLetters.name
      }
    }
  }
}

output storageAccountName string = storage.name
output blobAccountUrl string = storage.properties.primaryEndpoints.blob
output pipelineIdentityClientId string = pipelineIdentity.properties.clientId
output pipelineIdentityId string = pipelineIdentity.id
output functionAppName string = bridge.name
