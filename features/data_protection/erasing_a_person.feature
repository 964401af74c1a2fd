Feature: Erasing a person on a lawful request
  As a national information bureau that holds data which could get people killed,
  I want an admin of our organisation to erase a person's identifying data for good when the law requires it,
  so that nobody can read or find them again, while what happened to them, and the register's integrity, stay on record.

  Background:
    Given the case worker has opened a case for the prisoner of war "Ulvbrecht Qwzorthiennyk", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC
    And the case worker has noted "Qwzorthiennyk's sister called, asking for news"
    And a search by the case worker for "Qwzorthiennyk" finds the case

  Scenario: Erasing a person on request
    When the admin erases the person, because "request DP-2024-0042 under the data protection policy"
    Then the register answers 200
    And the case shows the person was erased, because "request DP-2024-0042 under the data protection policy"

    When the case worker looks at the case
    Then the register answers 200
    And the case shows no name of the person, only their nationality AM
    And the person is held by AZ at "Hadrut"

    When the case worker reads the case's history
    Then the history lists 4 events, oldest first
    And event 2 of the history is "captured", and it stands
    And event 2 of the history still shows by_party "AZ"
    And event 2 of the history still shows place "Hadrut"
    And event 4 of the history is "erased", and it stands
    And nothing in the history names "Qwzorthiennyk" or "Ulvbrecht"
    And a search by the case worker for "Qwzorthiennyk" finds nobody
    And a search by the case worker for "Ulvbrecht Qwzorthiennyk" finds nobody

    When the auditor verifies the register
    Then the register's chain holds, over 4 events

  Scenario: Only an admin erases a person, and only once
    When the case worker erases the person, because "the family asked us to"
    Then the register answers 403 "forbidden"
    And nothing was recorded: the case is still at version 3

    When the admin erases the person, because "request DP-2024-0042 under the data protection policy"
    Then the register answers 200
    When the admin erases the person, because "request DP-2024-0042 under the data protection policy"
    Then the register answers 409 "invalid-transition"
    When the case worker records that AZ held the person at "Baku" on 2021-02-01, according to the ICRC
    Then the register answers 409 "invalid-transition"
    And nothing was recorded: the case is still at version 4
